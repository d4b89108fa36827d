"""ratings.rater_phone_masked: stored masks hide at least half the digits (issue 11 #7)

The old mask showed the first three and last four digits (138****5678: 7 of 11, or 7 of
8 for 62345678). The new one (service/privacy.py mask_phone) shows at most half. The
clear phone is encrypted, so the new mask is cut from the old one: of the positions the
new rule shows, those the old mask showed stay; the others become ``*``. Masks of up to
7 characters already hid all but the first. Running it twice changes nothing.

Revision ID: 0011
Revises: 0015c
"""
from alembic import op


revision = '0011'
down_revision = '0015c'
branch_labels = None
depends_on = None


def upgrade():
    for length in range(8, 33):  # the column holds at most 32 characters
        visible = length // 2
        head, tail = min((visible + 1) // 2, 3), min(visible // 2, 4)
        stars = "*" * (length - head - tail)
        op.execute(
            f"UPDATE ratings SET rater_phone_masked = substr(rater_phone_masked, 1, {head}) || '{stars}' "
            f"|| substr(rater_phone_masked, {length - tail + 1}) WHERE length(rater_phone_masked) = {length}")


def downgrade():
    pass  # the digits hidden now are not stored anywhere in clear; nothing to restore
