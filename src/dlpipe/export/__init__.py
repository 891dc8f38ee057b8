"""Exporting a bundle: ONNX (with table preprocessing folded in), TorchScript, torch.export; int8 quantisation."""

from dlpipe.export.exporter import FORMATS, ExportResult, export_bundle, run_exported
from dlpipe.export.graph import table_inputs

__all__ = ["FORMATS", "ExportResult", "export_bundle", "run_exported", "table_inputs"]
