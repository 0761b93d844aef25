"""Django's makemessages, also extracting `_l(...)`: modules that need both
gettext and gettext_lazy import the lazy one as `_l`, which xgettext does
not know as a keyword by default (and those strings would silently stay
untranslated)."""

from django.core.management.commands import makemessages


class Command(makemessages.Command):
    xgettext_options = [*makemessages.Command.xgettext_options, "--keyword=_l"]
