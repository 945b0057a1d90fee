"""The C-MET model: connector (the only trained part), losses, baselines and the model bundle."""
