"""Text: the negative-feedback classifier (cues, features, models), scoring, its training and evaluation."""
