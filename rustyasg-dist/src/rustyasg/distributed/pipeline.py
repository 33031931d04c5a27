"""placeholder"""
class Pipeline:  # replaced below
    pass
