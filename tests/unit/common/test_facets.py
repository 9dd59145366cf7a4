"""The facet description against the schema the migrations make, and against its users."""

from __future__ import annotations

import dataclasses

import sqlalchemy as sa

from services.backend.conversation_query import ConversationFilter
from services.common.facets import FACETS


def test_every_described_facet_is_a_table_keyed_by_conversation_and_its_values(migrated_engine):
    inspector = sa.inspect(migrated_engine)
    for facet in FACETS:
        key = inspector.get_pk_constraint(facet.table)["constrained_columns"]
        assert key == ["conversation_id", *facet.columns], facet.name


def test_the_conversation_filter_has_a_field_of_each_facets_name():
    fields = {field.name for field in dataclasses.fields(ConversationFilter)}
    assert {facet.name for facet in FACETS} <= fields


def test_names_routes_and_parameters_are_distinct():
    for attribute in ("name", "table", "route", "endpoint", "parameter"):
        values = [getattr(facet, attribute) for facet in FACETS]
        assert len(values) == len(set(values)), attribute
