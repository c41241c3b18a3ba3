"""Foundation every layer stands on: the description, errors, i18n and tool drivers."""
