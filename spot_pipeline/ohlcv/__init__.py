"""Daily OHLCV candles: the partitioned asset, its fetching, checks, job and schedule."""
