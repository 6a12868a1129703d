"""`python -m trainer COMMAND`: the trainer's command line (`trainer.cli`)."""

import sys

EXTRA = {"scipy", "matplotlib", "sklearn"}  # the `train` extra: the app itself runs without them

try:
    from trainer.cli import main

    code = main()
except ModuleNotFoundError as exc:
    if (exc.name or "").split(".")[0] not in EXTRA:
        raise
    print(f"python -m trainer: {exc.name} is not installed: the trainer's dependencies are an extra, "
          'pip install -e ".[train]"', file=sys.stderr)
    code = 2
raise SystemExit(code)
