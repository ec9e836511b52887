{#- Small generic tests (no dbt_utils here: the package hub is out of reach). -#}

{#- Every non-null value of a code column is a code of its code-book entry (`meta.codes`).
    A new code must not stop a year (real 2018 places brought `catr` 7): the row is kept,
    labelled "unknown code N", and this warns with the number of rows, per code and year. -#}
{% test accepted_codes(model, column_name) %}
{{ config(severity='warn', fail_calc='coalesce(sum(rows), 0)') }}
select
    {{ column_name }} as unexpected_code,
    {{ accident_year_from_num_acc('num_acc') }} as accident_year,
    count(*) as rows
from {{ model }}
where {{ column_name }} is not null
    and {{ codebook_code(column_name) }} not in (
        select code from {{ ref('stg_codebook_codes') }}
        where codebook_entry = '{{ codebook_entry(column_name) }}'
    )
group by 1, 2
{% endtest %}

{#- No code column of the model holds a value its code book calls "not recorded"
    (`baac_columns.not_recorded_values`): staging turns those into NULL. Python reads the
    same seed (ml.features.read_not_recorded), so the two cannot disagree unseen. -#}
{% test not_recorded_is_null(model) %}
{%- set coded = [] -%}
{%- if execute -%}
    {%- set node = graph.nodes.values() | selectattr('resource_type', 'equalto', 'model')
        | selectattr('name', 'equalto', model.identifier) | first -%}
    {%- for column in node.columns.values() if column.meta.get('codes') -%}
        {%- do coded.append(column) -%}
    {%- endfor -%}
{%- endif %}
with not_recorded as (
    select "table" || '.' || "column" as codebook_entry, unnest(string_to_array(not_recorded_values, ';')) as code
    from {{ ref('baac_columns') }}
)
{%- for column in coded %}
select '{{ column.name }}' as column_name, {{ codebook_code(column.name) }} as code, count(*) as rows
from {{ model }}
where {{ codebook_code(column.name) }} in (
    select code from not_recorded where codebook_entry = '{{ column.meta["codes"] }}'
)
group by 1, 2
{{ "union all" if not loop.last }}
{%- else %}
select null as column_name, null as code, 0 as rows where false
{%- endfor %}
{% endtest %}

{#- Every non-null value lies within [min_value, max_value]. -#}
{% test value_between(model, column_name, min_value, max_value) %}
select {{ column_name }} as out_of_range, count(*) as rows
from {{ model }}
where {{ column_name }} < {{ min_value }} or {{ column_name }} > {{ max_value }}
group by 1
{% endtest %}

{#- The columns together identify a row. -#}
{% test unique_combination(model, columns) %}
select {{ columns | join(', ') }}, count(*) as rows
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}

{#- Every row's (columns) exists in `to` (a composite foreign key). -#}
{% test relationship_on(model, columns, to) %}
select {% for c in columns %}child.{{ c }}{{ ", " if not loop.last }}{% endfor %}, count(*) as rows
from {{ model }} as child
left join {{ to }} as parent
    on {% for c in columns %}child.{{ c }} = parent.{{ c }}{{ " and " if not loop.last }}{% endfor %}
where parent.{{ columns[0] }} is null
group by {% for c in columns %}child.{{ c }}{{ ", " if not loop.last }}{% endfor %}
{% endtest %}

{#- The share of an accident's reported points that are rejected (placeholders, outside the
    département) per département and year must not jump: above its previous year's share
    (or, for its first year, above the national share of that year) by more than
    `flagged_share_jump` (a fraction), counted where at least `min_points` points were
    reported. A warning, not an error: the year loads, and the check names where to look. -#}
{% test flagged_coordinates_share_is_steady(model, min_points=30) %}
{{ config(severity='warn', fail_calc='count(*)') }}
with by_department as (
    select
        department_code,
        accident_year,
        count(*) filter (where coordinates_status <> 'not recorded') as reported,
        count(*) filter (where coordinates_status in ('placeholder', 'outside its département')) as flagged
    from {{ model }}
    group by department_code, accident_year
),

national as (
    select
        accident_year,
        sum(flagged) / nullif(sum(reported), 0) as national_share
    from by_department
    group by accident_year
),

shares as (
    select
        by_department.department_code,
        by_department.accident_year,
        by_department.reported,
        by_department.flagged,
        by_department.flagged / nullif(by_department.reported, 0) as flagged_share,
        national.national_share,
        lag(by_department.flagged / nullif(by_department.reported, 0)) over (
            partition by by_department.department_code order by by_department.accident_year
        ) as previous_share
    from by_department
    inner join national on by_department.accident_year = national.accident_year
)

select *
from shares
where
    reported >= {{ min_points }}
    and flagged_share - coalesce(previous_share, national_share) > {{ var('flagged_share_jump') }}
{% endtest %}
