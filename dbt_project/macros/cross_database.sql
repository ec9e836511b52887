{#- Where DuckDB (the embedded warehouse, target dev) and PostgreSQL (the team profile, target
    team) write the same thing differently: one macro each, dispatched on the adapter
    (`adapter.dispatch`: `duckdb__`, `postgres__`, else `default__`), so that every model is
    written once. Everything else in the models is SQL both accept. Each pair gives the same
    values on the same rows (tests/team/test_warehouse_on_postgres.py builds both and compares). -#}

{#- Text as a double, NULL when it is not a number ("-", "", "12a"). -#}
{% macro try_cast_double(value) -%}
    {{ return(adapter.dispatch('try_cast_double')(value)) }}
{%- endmacro %}

{% macro default__try_cast_double(value) -%}
    try_cast({{ value }} as double precision)
{%- endmacro %}

{#- PostgreSQL has no try_cast (pg_input_is_valid comes with 16): a number is what its
    numeric syntax accepts, spaces around it allowed as in DuckDB. -#}
{% macro postgres__try_cast_double(value) -%}
    case
        when trim(cast({{ value }} as text)) ~ '^[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?$'
            then cast(trim(cast({{ value }} as text)) as double precision)
    end
{%- endmacro %}

{#- Integer division of non-negative integers (the callers check the range first): DuckDB's
    `/` would give a double; PostgreSQL's `/` of integers truncates, as `//` floors. -#}
{% macro integer_divide(dividend, divisor) -%}
    {{ return(adapter.dispatch('integer_divide')(dividend, divisor)) }}
{%- endmacro %}

{% macro default__integer_divide(dividend, divisor) -%}
    ({{ dividend }}) / ({{ divisor }})
{%- endmacro %}

{% macro duckdb__integer_divide(dividend, divisor) -%}
    ({{ dividend }}) // ({{ divisor }})
{%- endmacro %}

{#- A date, NULL when the day does not exist (30 February) rather than an error. -#}
{% macro safe_make_date(year, month, day) -%}
    {{ return(adapter.dispatch('safe_make_date')(year, month, day)) }}
{%- endmacro %}

{% macro default__safe_make_date(year, month, day) -%}
    try(make_date({{ year }}, {{ month }}, {{ day }}))
{%- endmacro %}

{% macro postgres__safe_make_date(year, month, day) -%}
    case when {{ postgres__date_exists(year, month, day) }} then make_date({{ year }}, {{ month }}, {{ day }}) end
{%- endmacro %}

{#- A timestamp to the minute, NULL when the day or the time does not exist. -#}
{% macro safe_make_timestamp(year, month, day, hour, minute) -%}
    {{ return(adapter.dispatch('safe_make_timestamp')(year, month, day, hour, minute)) }}
{%- endmacro %}

{% macro default__safe_make_timestamp(year, month, day, hour, minute) -%}
    try(make_timestamp({{ year }}, {{ month }}, {{ day }}, {{ hour }}, {{ minute }}, 0))
{%- endmacro %}

{% macro postgres__safe_make_timestamp(year, month, day, hour, minute) -%}
    case
        when {{ postgres__date_exists(year, month, day) }}
            and {{ hour }} between 0 and 23 and {{ minute }} between 0 and 59
            then make_timestamp({{ year }}, {{ month }}, {{ day }}, {{ hour }}, {{ minute }}, 0)
    end
{%- endmacro %}

{#- PostgreSQL's make_date raises on a day that does not exist: check it first (the month's
    last day is the first of the month, plus a month, minus a day). -#}
{% macro postgres__date_exists(year, month, day) -%}
    ({{ year }} between 1 and 9999 and {{ month }} between 1 and 12 and {{ day }} between 1 and
        extract(day from make_date({{ year }}, {{ month }}, 1) + interval '1 month' - interval '1 day'))
{%- endmacro %}

{#- ISO day of the week (Monday 1 ... Sunday 7), a BIGINT as DuckDB's isodow. -#}
{% macro iso_day_of_week(date) -%}
    {{ return(adapter.dispatch('iso_day_of_week')(date)) }}
{%- endmacro %}

{% macro default__iso_day_of_week(date) -%}
    cast(extract(isodow from {{ date }}) as bigint)
{%- endmacro %}

{% macro duckdb__iso_day_of_week(date) -%}
    isodow({{ date }})
{%- endmacro %}

{#- The year of a date or timestamp, a BIGINT as DuckDB's year(). -#}
{% macro year_of(date) -%}
    {{ return(adapter.dispatch('year_of')(date)) }}
{%- endmacro %}

{% macro default__year_of(date) -%}
    cast(extract(year from {{ date }}) as bigint)
{%- endmacro %}

{% macro duckdb__year_of(date) -%}
    year({{ date }})
{%- endmacro %}

{#- A code -> label map aggregated over the rows where `condition` holds (NULL when none
    does), and a lookup in it: DuckDB's MAP, PostgreSQL's jsonb. -#}
{% macro label_map_agg(key, value, condition) -%}
    {{ return(adapter.dispatch('label_map_agg')(key, value, condition)) }}
{%- endmacro %}

{% macro default__label_map_agg(key, value, condition) -%}
    map_from_entries(list({'key': {{ key }}, 'value': {{ value }}}) filter (where {{ condition }}))
{%- endmacro %}

{% macro postgres__label_map_agg(key, value, condition) -%}
    jsonb_object_agg({{ key }}, {{ value }}) filter (where {{ condition }})
{%- endmacro %}

{% macro label_map_lookup(label_map, key) -%}
    {{ return(adapter.dispatch('label_map_lookup')(label_map, key)) }}
{%- endmacro %}

{% macro default__label_map_lookup(label_map, key) -%}
    map_extract_value({{ label_map }}, {{ key }})
{%- endmacro %}

{% macro postgres__label_map_lookup(label_map, key) -%}
    ({{ label_map }} ->> ({{ key }}))
{%- endmacro %}

{#- The rows of `relation` unpivoted: one row per row and column of `columns` (NULLs kept),
    with `keep` columns, the column's name in `column_name` and its value in `value`. -#}
{% macro unpivot_including_nulls(relation, keep, columns) -%}
    {{ return(adapter.dispatch('unpivot_including_nulls')(relation, keep, columns)) }}
{%- endmacro %}

{% macro default__unpivot_including_nulls(relation, keep, columns) -%}
    select
        {{ relation }}.{{ keep | join(', ' ~ relation ~ '.') }},
        unpivoted.column_name,
        unpivoted.value
    from {{ relation }}
    cross join lateral (
        values
        {%- for column in columns %}
            ('{{ column }}', {{ relation }}.{{ column }}){{ "," if not loop.last }}
        {%- endfor %}
    ) as unpivoted (column_name, value)
{%- endmacro %}

{% macro duckdb__unpivot_including_nulls(relation, keep, columns) -%}
    select
        {{ keep | join(', ') }},
        column_name,
        value
    from {{ relation }}
    unpivot include nulls (value for column_name in ({{ columns | join(', ') }}))
{%- endmacro %}

{#- Text without the spaces around it: DuckDB's trim() removes every Unicode space separator
    (category Zs: the no-break space the files hold, U+00A0, among them), not tabs or line
    breaks; PostgreSQL's removes only U+0020, so it is told the same set. -#}
{% macro trim_spaces(text) -%}
    {{ return(adapter.dispatch('trim_spaces')(text)) }}
{%- endmacro %}

{% macro default__trim_spaces(text) -%}
    trim({{ text }})
{%- endmacro %}

{% macro postgres__trim_spaces(text) -%}
    {%- set separators = [32, 160, 5760] + range(8192, 8203) | list + [8239, 8287, 12288] -%}
    btrim({{ text }}, {% for code in separators %}chr({{ code }}){{ " || " if not loop.last }}{% endfor %})
{%- endmacro %}
