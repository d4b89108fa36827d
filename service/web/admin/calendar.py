"""工作日历: a year of working days — the library's holidays and 调休, the admin's
overrides marked — with add/remove of a holiday or make-up day, through
service/cases/calendar_admin.py (as ``hcp calendar add-holiday|add-workday|remove``)."""
from __future__ import annotations

from datetime import date

from flask import flash, redirect, render_template, request, url_for

from models.clock import local_date
from models.types import utcnow
from service.cases import calendar_admin
from service.extensions import db
from service.web.admin import admin_only, blp, saved, user
from service.web.admin.forms import CalendarForm

WEEKDAYS = "一二三四五六日"


def _year() -> int:
    year = request.args.get("year", type=int) or local_date(utcnow()).year
    return min(max(year, 2000), 2100)


def _page(year: int, form: CalendarForm | None = None, status: int = 200):
    form = form or CalendarForm(formdata=None, prefix="cal")
    form.kind.choices = [("", "请选择类型")] + list(calendar_admin.KINDS.items())
    return render_template("admin/calendar.html", year=year, months=calendar_admin.year_view(db.session, year),
                           overrides=calendar_admin.overrides_of(db.session, year), form=form,
                           covered=calendar_admin.library_covers(year), weekdays=WEEKDAYS,
                           kinds=calendar_admin.KINDS), status


@blp.app_context_processor
def _next_year_warning():
    """The console's warning when the coming year has no calendar data yet (admins only)."""
    if request.blueprint != "admin" or not getattr(user(), "role", None) == "admin":
        return {}
    coming = local_date(utcnow()).year + 1
    if calendar_admin.year_has_data(db.session, coming):
        return {}
    return {"calendar_missing_year": coming}


@blp.get("/calendar")
@admin_only
def calendar():
    return _page(_year())


@blp.post("/calendar")
@admin_only
def calendar_set():
    form = CalendarForm(prefix="cal")
    year = _year()
    if not form.validate():
        return _page(year, form, 422)
    if form.kind.data not in calendar_admin.KINDS:
        form.kind.errors = ["请选择节假日或调休工作日"]
        return _page(year, form, 422)
    day: date = form.day.data
    note = (form.note.data or "").strip() or None
    change = calendar_admin.set_override(db.session, day, form.kind.data, note)
    return saved(f"calendar.{form.kind.data}", day.isoformat(), change.before,
                 calendar_admin.override_entry(form.kind.data, note, change),
                 f"{day.isoformat()} 已设为{calendar_admin.KINDS[form.kind.data]}；"
                 + calendar_admin.moved_text(change),
                 url_for("admin.calendar", year=day.year))


@blp.post("/calendar/<day>/remove")
@admin_only
def calendar_remove(day: str):
    try:
        d = date.fromisoformat(day)
    except ValueError:
        flash("日期格式有误", "error")
        return redirect(url_for("admin.calendar"))
    change = calendar_admin.remove_override(db.session, d)
    if change is None:
        flash(f"{d.isoformat()} 没有人工调整", "error")
        return redirect(url_for("admin.calendar", year=d.year))
    return saved("calendar.remove", d.isoformat(), change.before, calendar_admin.moved_entry(change),
                 f"已删除 {d.isoformat()} 的人工调整，恢复为日历库的安排；" + calendar_admin.moved_text(change),
                 url_for("admin.calendar", year=d.year))
