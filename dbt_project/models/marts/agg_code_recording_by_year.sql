-- How well each code column is recorded, per accident year: rows, not recorded (NULL),
-- "none" or "not applicable" (a code that says nothing happened), and codes the code book
-- does not know. Every code column of the staging models, read from their YAML (meta.codes).
-- depends_on: {{ ref('stg_accidents') }}, {{ ref('stg_places') }}
-- depends_on: {{ ref('stg_users') }}, {{ ref('stg_vehicles') }}
-- The select lists are generated from the YAML: the layout rules cannot see through the loops.
-- noqa: disable=LT02
{%- set models = ['stg_accidents', 'stg_places', 'stg_users', 'stg_vehicles'] %}
{%- set coded = {} %}
{%- if execute %}
    {%- for node in graph.nodes.values() if node.resource_type == 'model' and node.name in models %}
        {%- set names = node.columns.values() | selectattr('meta.codes') | map(attribute='name') | list %}
        {%- do coded.update({node.name: names}) %}
    {%- endfor %}
{%- endif %}

with
{%- for model in models if coded.get(model) %}
    {{ model }}_codes as (
        select
            {{ accident_year_from_num_acc('num_acc') }} as accident_year,
            {%- for column in coded[model] %}
                cast({{ column }} as varchar) as {{ column }}{{ "," if not loop.last }}
            {%- endfor %}
        from {{ ref(model) }}
    ),
{%- endfor %}

-- Counted first (a few thousand values), labelled after: 1.9 M road users unpivot into
-- tens of millions of values.
counted as (
    {%- for model in models if coded.get(model) %}
        select
            '{{ model }}' as model_name,
            accident_year,
            column_name,
            value,
            count(*) as rows
        from ({{ unpivot_including_nulls(model ~ '_codes', ['accident_year'], coded[model]) }}) as unpivoted
        group by accident_year, column_name, value
        {{ "union all" if not loop.last }}
    {%- endfor %}
),

entries as (
    {%- for model in models if coded.get(model) %}
        {%- set outer = loop %}
        {%- for column in coded[model] %}
            select
                '{{ column }}' as column_name,
                '{{ codebook_entry(column) }}' as codebook_entry
            {{ "union all" if not (loop.last and outer.last) }}
        {%- endfor %}
    {%- endfor %}
),

labelled as (
    select
        counted.model_name,
        counted.column_name,
        entries.codebook_entry,
        counted.accident_year,
        counted.rows,
        counted.value is null as is_not_recorded,
        counted.value is not null and codebook.code is null as is_unknown,
        coalesce(codebook.label_en in ('none', 'not applicable (not a pedestrian)'), false) as is_none
    from counted
    inner join entries on counted.column_name = entries.column_name
    left join {{ ref('stg_codebook_codes') }} as codebook
        on entries.codebook_entry = codebook.codebook_entry and {{ codebook_code('counted.value') }} = codebook.code
)

select
    model_name,
    column_name,
    codebook_entry,
    accident_year,
    cast(sum(rows) as bigint) as rows,
    cast(coalesce(sum(rows) filter (where is_not_recorded), 0) as bigint) as not_recorded,
    cast(coalesce(sum(rows) filter (where is_none), 0) as bigint) as none_or_not_applicable,
    cast(coalesce(sum(rows) filter (where is_unknown), 0) as bigint) as unknown_code,
    round(coalesce(sum(rows) filter (where is_not_recorded), 0) / sum(rows), 4) as not_recorded_share,
    round(coalesce(sum(rows) filter (where is_none), 0) / sum(rows), 4) as none_share
from labelled
group by model_name, column_name, codebook_entry, accident_year
