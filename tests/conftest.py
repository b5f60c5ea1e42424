pytest_plugins = ["tests.leakguard", "tests.s3fixtures", "tests.fsfixtures"]
