"""Repository root: the reproduction suite (labs/) and the project's tests (tests/) run from here."""
