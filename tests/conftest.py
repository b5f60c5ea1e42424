pytest_plugins = [
    "tests.requirements",
    "tests.seeds",
    "tests.leakguard",
    "tests.s3fixtures",
    "tests.fsfixtures",
    "tests.pgcluster",
    "tests.sqsserver",
]
