"""The baseline the intake is measured against: the thinnest intake anyone could write.

A minimal Flask view that stores the posted rating with one psycopg
``INSERT … ON CONFLICT (client_id) DO NOTHING`` into the same ``ratings`` table — no
authentication, no validation, no rate limit, no routing, no metrics — served by
gunicorn with hcp's own config/gunicorn.py. Each gunicorn thread keeps one autocommit
connection, so a request costs exactly one round trip to PostgreSQL.

``/floor`` is thinner still: it parses the same body and answers 201 without touching
the database. No Flask intake, however written, can be faster than it on this server;
``make bench`` reports it so that the intake's ratio can be read against that ceiling.
"""
from __future__ import annotations

import hashlib
import os
import threading

import psycopg
from flask import Flask, jsonify, request

INSERT = """
INSERT INTO ratings (client_id, body_hash, device_id, department_id, channel, "window", level, negative,
                     rated_at, rated_date, received_at, staff_no, comment, real_name)
VALUES (%(client_id)s, %(body_hash)s, %(device_id)s, %(department_id)s, %(channel)s, %(window)s,
        %(level)s, %(level)s <= 2, %(rated_at)s,
        (%(rated_at)s::timestamptz AT TIME ZONE 'Asia/Shanghai')::date, now(),
        %(staff_no)s, %(comment)s, false)
ON CONFLICT (client_id) DO NOTHING
RETURNING id, level <= 2 AS negative, received_at
"""


def create_app() -> Flask:
    dsn = os.environ["BENCH_BASELINE_DSN"]
    fixed = {
        "device_id": int(os.environ["BENCH_DEVICE_ID"]),
        "department_id": int(os.environ["BENCH_DEPARTMENT_ID"]),
        "channel": os.environ.get("BENCH_CHANNEL", "hall_terminal"),
        "window": os.environ.get("BENCH_WINDOW", "1"),
    }
    local = threading.local()
    app = Flask(__name__)

    def connection() -> psycopg.Connection:
        conn = getattr(local, "conn", None)
        if conn is None or conn.closed:
            conn = local.conn = psycopg.connect(dsn, autocommit=True)
        return conn

    @app.post("/baseline")
    def baseline():
        raw = request.get_data()
        body = request.get_json()
        row = connection().execute(INSERT, {
            **fixed, "client_id": body["client_id"], "body_hash": hashlib.sha256(raw).hexdigest(),
            "level": body["level"], "rated_at": body["rated_at"], "staff_no": body.get("staff_no"),
            "comment": body.get("comment")}).fetchone()
        if row is None:
            return jsonify(client_id=body["client_id"]), 200
        return jsonify(id=row[0], client_id=body["client_id"], level=body["level"],
                       negative=row[1], received_at=row[2].isoformat()), 201

    @app.post("/floor")
    def floor():
        body = request.get_json()
        return jsonify(client_id=body["client_id"], level=body["level"]), 201

    return app
