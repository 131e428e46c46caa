"""midigan: piano ideas from an LSTM-GAN, as MIDI files or live MIDI into a DAW.

Data flow, one module per step:
MIDI files -> corpus -> training (model, train) -> export (ONNX) -> runtime ->
arrange (preset) -> MIDI file, or player -> ports (live MIDI).
"""
__version__ = "0.1.0"
