"""Risk: the RiskManager (``risk.manager``) and what it is asked and answers (``risk.base``)."""
