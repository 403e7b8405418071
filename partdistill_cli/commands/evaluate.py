def evaluate() -> None:
    """placeholder"""
