-- depends_on: {{ ref('ml_features') }}
-- Every numeric feature lies within the range its YAML declares (meta minimum / maximum):
-- the same bounds the scoring API enforces, so the model never sees what it cannot be sent.
{%- set node = graph.nodes.values() | selectattr("name", "equalto", "ml_features") | first %}
{%- set ranged = [] %}
{%- for column in node.columns.values() if column.meta.get("minimum") is not none %}
    {%- do ranged.append(column) %}
{%- endfor %}
{%- for column in ranged %}
    select
        '{{ column.name }}' as feature,
        {{ column.name }} as value
    from {{ ref('ml_features') }}
    where {{ column.name }} < {{ column.meta["minimum"] }} or {{ column.name }} > {{ column.meta["maximum"] }}
    {{ "union all" if not loop.last }}
{%- endfor %}
