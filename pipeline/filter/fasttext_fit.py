"""Run as a script by `quality_train_spark.fit`: train one fastText model in a bare interpreter.

    python fasttext_fit.py '{"data": ..., "out_dir": ..., "params": {...}, "quantize": false}'

It imports nothing but fastText on purpose. This fastText build reads memory it did not initialise during
supervised training: a second training inside one process, or one in a process whose heap is already in
use (after importing pyarrow and pyspark), gives different weights for the same seed and sometimes ends in
"Encountered NaN". The first training of a bare interpreter is reproducible byte for byte.
"""
import json
import os
import sys

import fasttext


def main(spec: dict) -> None:
    model = fasttext.train_supervised(input=spec["data"], thread=1, verbose=0, **spec["params"])
    model.save_model(os.path.join(spec["out_dir"], "model.bin"))
    if spec["quantize"]:
        model.quantize(input=spec["data"], qnorm=True, retrain=False, thread=1, verbose=0)
        model.save_model(os.path.join(spec["out_dir"], "model.ftz"))


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
