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
                {{ codebook_code(column) }} as {{ column }}{{ "," if not loop.last }}
            {%- endfor %}
        from {{ ref(model) }}
    ),
{%- endfor %}

codes_by_year as (
    {%- for model in models if coded.get(model) %}
        select
            '{{ model }}' as model_name,
            accident_year,
            column_name,
            code
        from {{ model }}_codes
        unpivot include nulls (code for column_name in ({{ coded[model] | join(', ') }}))
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
        codes_by_year.model_name,
        codes_by_year.column_name,
        entries.codebook_entry,
        codes_by_year.accident_year,
        codes_by_year.code,
        codebook.code is not null as is_known,
        codebook.label_en in ('none', 'not applicable (not a pedestrian)') as is_none
    from codes_by_year
    inner join entries on codes_by_year.column_name = entries.column_name
    left join {{ ref('stg_codebook_codes') }} as codebook
        on entries.codebook_entry = codebook.codebook_entry and codes_by_year.code = codebook.code
)

select
    model_name,
    column_name,
    codebook_entry,
    accident_year,
    count(*) as rows,
    count(*) filter (where code is null) as not_recorded,
    count(*) filter (where is_none) as none_or_not_applicable,
    count(*) filter (where code is not null and not is_known) as unknown_code,
    round(count(*) filter (where code is null) / count(*), 4) as not_recorded_share,
    round(count(*) filter (where is_none) / count(*), 4) as none_share
from labelled
group by all
