"""GET /: the prediction page (static HTML that reads /features, /model and /calendar and
calls /predict); GET /calendar: the holidays it derives the "when" flags from."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from api.calendar import HolidayCalendar, read_holiday_calendar
from ml.defaults import HOLIDAYS_FILE, local_source_dir

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

router = APIRouter(tags=["page"])


class Calendar(BaseModel):
    holidays: dict[str, str] = Field(description="ISO date -> name of the French public holiday.")
    covered_years: list[int] = Field(
        description="Years the calendar covers: elsewhere the holiday flags are unknown (null)."
    )


@cache
def holiday_calendar(path: Path) -> HolidayCalendar:
    return read_holiday_calendar(path)


@router.get("/", include_in_schema=False)
def page() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html")


@router.get(
    "/calendar",
    response_model=Calendar,
    summary="French public holidays, as dbt reads them (the page derives is_public_holiday and "
    "is_holiday_eve from them)",
)
async def calendar() -> Calendar:
    found = holiday_calendar(local_source_dir() / HOLIDAYS_FILE)
    return Calendar(holidays=found.holidays, covered_years=found.covered_years)
