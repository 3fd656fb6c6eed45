"""Alerts for the engineer on call: failed runs and failed or warning candle checks, posted to a webhook."""
