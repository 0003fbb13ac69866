"""Browser checks of the built book: headless Chromium driven over the DevTools protocol."""
