"""spark-submit jobs/pipeline.py --input URI --output URI [--state URI] [--config FILE.yaml] [--set key=value ...]

Runs every stage in order into OUTPUT/<stage>; with --state, as one batch of scheduled runs.
"""
import os
import sys

# This script shares its name with the pipeline package: import the package, not this file.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

from pipeline.cli import pipeline_main  # noqa: E402

if __name__ == "__main__":
    pipeline_main(sys.argv[1:])
