def render() -> None:
    """placeholder"""
