"""Exchange adapters: the paper exchange and ccxt. They depend only on ``domain``."""
