"""Models to and from other libraries: ONNX files (:mod:`.onnx_export`, :mod:`.onnx_import`),
PyTorch modules (:mod:`.torch`), and scikit-learn pipelines converted by skl2onnx
(:mod:`.sklearn_onnx`).

Each needs its optional package only when it is called, and says which to install when the
package is missing (:mod:`.common`).
"""
