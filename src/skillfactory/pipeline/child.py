"""Entry point of a stage's child process: ``python -m skillfactory.pipeline.child KIND CONFIG.json``.

Also what ``accelerate launch`` runs for training stages (every rank runs it; the trainers coordinate the ranks and
only the main one writes the summary and manifest). Errors are printed in one line, as the CLI prints them.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

from skillfactory.pipeline.launch import STAGE_FUNCTIONS


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] not in STAGE_FUNCTIONS:
        print(f"usage: python -m skillfactory.pipeline.child {{{','.join(STAGE_FUNCTIONS)}}} CONFIG.json",
              file=sys.stderr)
        return 2
    kind, path = argv
    module_name, config_class, function = STAGE_FUNCTIONS[kind]
    module = importlib.import_module(module_name)
    from skillfactory.console import library_log
    from skillfactory.errors import SkillFactoryError

    try:
        config = getattr(module, config_class)(**json.loads(Path(path).read_text()))
        with library_log(config.out):  # as in-process stages: library messages to the stage's log.txt
            getattr(module, function)(config)
    except SkillFactoryError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
