"""identity resolution: attributes, pending flag, rules, match model, erasure tombstones

Revision ID: 0020
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import crm_model.types

revision = '0020'
down_revision = '0017'
branch_labels = None
depends_on = None

DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    with op.batch_alter_table('source_person', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attributes', DOCUMENT, nullable=True,
                                      comment='Source columns with no warehouse field, as JSON {column: value} (kept, never dropped).'))
        batch_op.add_column(sa.Column('model_pending', sa.Boolean(), nullable=True,
                                      comment='True when the row is new or changed since identity resolution last looked at it.'))
        batch_op.create_index(batch_op.f('ix_source_person_model_pending'), ['model_pending'], unique=False)
    # rows already resolved before this revision: the next `crmhub model` looks at them once
    op.execute("UPDATE source_person SET model_pending = true")
    with op.batch_alter_table('person_merge', schema=None) as batch_op:
        batch_op.add_column(sa.Column('fields', DOCUMENT, nullable=True,
                                      comment='Probabilistic matches: per field, the comparison level and its weight (JSON).'))
    op.create_table('person_rule',
    sa.Column('rule_id', sa.Integer(), nullable=False, comment='Row id.'),
    sa.Column('kind', sa.String(length=8), nullable=False, comment='must (always one person) or never (never one person).'),
    sa.Column('left_refs', DOCUMENT, nullable=False, comment="One side: JSON list of 'email:...', 'phone:...' or 'record:SOURCE/EXTERNAL_ID'."),
    sa.Column('right_refs', DOCUMENT, nullable=False, comment='The other side, same form.'),
    sa.Column('note', sa.String(length=255), nullable=True, comment='What the user typed (ids or emails).'),
    sa.Column('created_at', crm_model.types.UtcDateTime(timezone=True), nullable=False, comment='When the rule was made.'),
    sa.PrimaryKeyConstraint('rule_id', name=op.f('pk_person_rule')),
    )
    op.create_table('match_model',
    sa.Column('name', sa.String(length=64), nullable=False, comment="Model name ('default')."),
    sa.Column('params', DOCUMENT, nullable=False, comment='m and u probabilities per field level (JSON).'),
    sa.Column('trained_on', sa.Integer(), nullable=False, comment='Records it was trained on.'),
    sa.Column('trained_at', crm_model.types.UtcDateTime(timezone=True), nullable=False, comment='When.'),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_match_model')),
    )
    op.create_table('erasure_tombstone',
    sa.Column('digest', sa.String(length=64), nullable=False, comment='SHA-256 of kind:normalised value (no personal data kept).'),
    sa.Column('kind', sa.String(length=16), nullable=False, comment='email, phone or name_birth (name and birth date).'),
    sa.Column('erased_at', crm_model.types.UtcDateTime(timezone=True), nullable=False, comment='When `crmhub forget` ran.'),
    sa.PrimaryKeyConstraint('digest', name=op.f('pk_erasure_tombstone')),
    )


def downgrade() -> None:
    op.drop_table('erasure_tombstone')
    op.drop_table('match_model')
    op.drop_table('person_rule')
    with op.batch_alter_table('person_merge', schema=None) as batch_op:
        batch_op.drop_column('fields')
    with op.batch_alter_table('source_person', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_source_person_model_pending'))
        batch_op.drop_column('model_pending')
        batch_op.drop_column('attributes')
