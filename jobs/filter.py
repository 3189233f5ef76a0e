"""spark-submit jobs/filter.py --input URI --output URI [--config FILE.yaml] [--set key=value ...]"""
import os
import sys

# jobs/pipeline.py shares its name with the pipeline package: import the package, not that script.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

from pipeline.cli import stage_main  # noqa: E402
from pipeline.stages.filter import describe_at_risk  # noqa: E402


def main(argv=None) -> dict:
    """Run the filter stage; its languages at risk come last, where an operator reads first."""
    stats = stage_main("filter", argv)
    alarm = describe_at_risk(stats)
    if alarm:
        print(alarm, flush=True)
    return stats


if __name__ == "__main__":
    main(sys.argv[1:])
