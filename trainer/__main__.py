"""`python -m trainer COMMAND`: the trainer's command line (`trainer.cli`)."""

from trainer.cli import main

raise SystemExit(main())
