"""``phoneprov doctor``: deployment checks that return findings with their fix."""
