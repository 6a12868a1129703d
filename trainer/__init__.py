"""Training, evaluation and export of the Shazamlet encoder (`python -m trainer`).

Imports run one way: `trainer` uses `shazamlet` (front end, model definitions, model files, library,
recognizer); nothing in `shazamlet` imports `trainer`.
"""
