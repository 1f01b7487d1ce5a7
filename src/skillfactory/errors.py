"""The one base class of errors a user can fix (bad file, bad field, unknown name).

The CLI prints these as one line (``error: ...``) and exits with status 2, instead of a traceback from deep
inside a library. Every stage raises a subclass with a message that names the file/field and the fix.
"""


class SkillFactoryError(Exception):
    """Base of user-facing errors; the message alone must tell what to fix."""
