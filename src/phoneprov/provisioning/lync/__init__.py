"""The Lync / Skype for Business device update service: catalog, answers, checks."""
