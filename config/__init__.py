"""Configuration: settings from `TAILOR_*` environment variables and the offer catalog."""
