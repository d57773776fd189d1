"""Predicted customer value: who is still alive, what they will buy, and what that is worth."""
