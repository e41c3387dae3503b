"""The one exception type for problems a user can fix (bad data, bad config)."""


class InputError(Exception):
    """Raised with one readable line per problem; the command prints the lines and exits non-zero."""

    def __init__(self, problems: str | list[str]):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))
