-- One row per road user the API scored, from the prediction log's daily Parquet files read in
-- place. An empty log is no error: DuckDB's reader fails on a glob that matches no file (a
-- new install, a service never called), so the files are counted first and, when there are
-- none, the log is only the empty typed relation below. With files, the union is by name: a
-- day logged before a feature existed reads NULL for it, and the types are fixed here.
{%- set prediction_log = source('api', 'prediction_log') -%}
{%- set log_files = 0 -%}
{%- if execute -%}
    {%- set found = run_query('select count(*) from glob(' ~ prediction_log.external ~ ')') -%}
    {%- set log_files = found.columns[0].values()[0] -%}
{%- endif %}

with empty_log as (
    select
        cast(null as timestamptz) as logged_at,
        cast(null as varchar) as request_id,
        cast(null as bigint) as request_row,
        cast(null as varchar) as model_name,
        cast(null as varchar) as model_version,
        {%- for feature in drift_features() %}
            cast(null as double) as {{ feature.name }},
        {%- endfor %}
        cast(null as bigint) as predicted_severity
    where false
),

logged as (
    select * from empty_log
    {%- if log_files > 0 %}
        union all by name
        select *
        from read_parquet({{ prediction_log.external }}, union_by_name = true, hive_partitioning = false)
    {%- endif %}
)

select
    logged_at,
    -- the log's days are UTC days (its date=YYYY-MM-DD folders too)
    cast(timezone('UTC', logged_at) as date) as logged_on,
    request_id,
    cast(request_row as bigint) as request_row,
    -- not recorded is NULL (NaN too, as a file written by hand may have it)
    {%- for feature in drift_features() %}
        cast(case when not isnan({{ feature.name }}) then {{ feature.name }} end as double) as {{ feature.name }},
    {%- endfor %}
    model_name,
    model_version,
    cast(predicted_severity as integer) as predicted_severity
from logged
