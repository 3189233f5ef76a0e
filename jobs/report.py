"""python jobs/report.py --run OUTPUT [--dest FILE.html]   (spark-submit jobs/report.py ... works too)

Writes OUTPUT/report.html: the languages the filter kept far less often than the rest (first, when there are
any), funnel, drops by reason, main-content rescues and PII replacements, languages, lengths, duplicate
clusters, dropped samples and throughput of a pipeline run. Reads the run with pyarrow only, so it needs no Spark session.
"""
import argparse
import os
import sys

# jobs/pipeline.py shares its name with the pipeline package: import the package, not that script.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

from pipeline import report, storage  # noqa: E402


def main(argv=None) -> str:
    p = argparse.ArgumentParser(prog="jobs/report.py", description=__doc__.split("\n\n", 1)[1].strip())
    p.add_argument("--run", required=True, help="the pipeline's --output URI (holds clean/, dedupe/, filter/, tokenize/)")
    p.add_argument("--dest", help="where to write the HTML (default: RUN/report.html)")
    args = p.parse_args(argv)
    dest = report.write(args.run, args.dest)
    print(f"report: {storage.display(dest)}", flush=True)
    return dest


if __name__ == "__main__":
    main(sys.argv[1:])
