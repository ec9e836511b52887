{#- Small generic tests (no dbt_utils here: the package hub is out of reach). -#}

{#- Every non-null value is a code of the code book (or of derived_codes). -#}
{% test accepted_codes(model, column_name, codebook_table, codebook_column, seed='baac_codes') %}
select {{ column_name }} as unexpected_code, count(*) as rows
from {{ model }}
where {{ column_name }} is not null
    and cast({{ column_name }} as varchar) not in (
        select code from {{ ref(seed) }}
        where "table" = '{{ codebook_table }}' and "column" = '{{ codebook_column }}'
    )
group by 1
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
group by all
{% endtest %}
