"""spark-submit jobs/decontaminate.py --input URI --output URI [--config FILE.yaml] [--set key=value ...]"""
import os
import sys

# jobs/pipeline.py shares its name with the pipeline package: import the package, not that script.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

from pipeline.cli import stage_main  # noqa: E402

if __name__ == "__main__":
    stage_main("decontaminate", sys.argv[1:])
