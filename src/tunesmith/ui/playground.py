"""(stub)"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI


def add_routes(app: FastAPI, studio: Any) -> None:
    pass
