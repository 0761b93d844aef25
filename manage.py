#!/usr/bin/env python
import os
import sys

# Commands that read only code (models, migrations, templates, messages) and
# touch no data or secret: they may run on a fresh checkout with no
# environment. Everything else (serving, migrate, check, shell, ...) still
# refuses development secrets with DEBUG off.
CODE_ONLY_COMMANDS = {"makemigrations", "makemessages", "compilemessages", "help", "version"}


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    if len(sys.argv) > 1 and sys.argv[1] in CODE_ONLY_COMMANDS:
        import config.env

        config.env.code_only_command = True
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
