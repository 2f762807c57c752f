from crmhub.cli import run

run()
