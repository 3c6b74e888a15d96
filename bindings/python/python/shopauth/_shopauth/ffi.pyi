# Type stub for the cffi declarations maturin generates at build time.
from typing import Any

ffi: Any
