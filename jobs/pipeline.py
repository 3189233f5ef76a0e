"""spark-submit jobs/pipeline.py --input URI --output URI [--config FILE.yaml] [--set key=value ...]

Runs clean, filter, dedupe and tokenize into OUTPUT/<stage>, for scheduled batch runs.
"""
import os
import sys

# This script shares its name with the pipeline package: import the package, not this file.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

from pipeline.cli import pipeline_main  # noqa: E402
from pipeline.stages.filter import describe_at_risk  # noqa: E402


def main(argv=None) -> list[dict]:
    """Run the pipeline; the filter stage's languages at risk come last, not lost among later stages' lines."""
    summary = pipeline_main(argv)
    alarm = next((describe_at_risk(s) for s in summary if s["stage"] == "filter"), "")
    if alarm:
        print(alarm, flush=True)
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
