{#- Drift: the population stability index (PSI) of a set of rows against a reference set,
    per feature. The features are ml_features' (role `feature`, in its YAML order); a code
    column (one with `meta.codes`) is categorical, any other numeric, as ml/features.py reads
    them. Known only when dbt executes (the graph is empty while it parses). -#}
{% macro drift_features() -%}
    {%- set features = [] -%}
    {%- if execute -%}
        {%- set coded = [] -%}
        {%- for node in graph.nodes.values() if node.resource_type == 'model' -%}
            {%- for column in node.columns.values() if column.meta.get('codes') -%}
                {%- do coded.append(column.name) -%}
            {%- endfor -%}
        {%- endfor -%}
        {%- set ml_features = graph.nodes.values() | selectattr('resource_type', 'equalto', 'model')
            | selectattr('name', 'equalto', 'ml_features') | first -%}
        {%- for column in ml_features.columns.values() if column.meta.get('role') == 'feature' -%}
            {%- do features.append({
                'name': column.name,
                'kind': 'categorical' if column.name in coded else 'numeric',
            }) -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(features) }}
{%- endmacro %}

{#- The alert threshold on a PSI: BAAC_PSI_ALERT_THRESHOLD, else the var psi_alert_threshold. -#}
{% macro psi_alert_threshold() -%}
    cast({{ env_var('BAAC_PSI_ALERT_THRESHOLD', var('psi_alert_threshold') | string) }} as double)
{%- endmacro %}

{#- `relation` in long form: one row per row and feature (`columns` kept), the value as a double. -#}
{% macro feature_values_long(relation, columns=[]) -%}
    {%- for feature in drift_features() %}
    select
        {%- for column in columns %}
            {{ column }},
        {%- endfor %}
        '{{ feature.name }}' as feature,
        '{{ feature.kind }}' as feature_kind,
        cast({{ feature.name }} as double) as value
    from {{ relation }}
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
{%- endmacro %}

{#- A bin's bound as text: 18 rather than 18.0. -#}
{% macro bin_bound(value) -%}
    regexp_replace(cast({{ value }} as varchar), '\.0$', '')
{%- endmacro %}

{#- The CTEs that end in `psi`: per group (`group_by`, columns of `compared`) and feature,
    the PSI of `compared` against `reference`, both in the long form of feature_values_long.
    Bins: a numeric feature's reference deciles (distinct values, so a feature with few values
    has fewer bins; below the first and from the last decile are bins too), a categorical
    feature's codes; NULL ("not recorded") is a bin of its own. Values are counted first, so
    bins are matched to distinct values only. -#}
{% macro psi_ctes(reference, compared, group_by) -%}
    psi_reference_counts as (
        select
            feature,
            feature_kind,
            value,
            count(*) as value_rows
        from {{ reference }}
        group by all
    ),

    psi_compared_counts as (
        select
            {%- for column in group_by %}
                {{ column }},
            {%- endfor %}
            feature,
            feature_kind,
            value,
            count(*) as value_rows
        from {{ compared }}
        group by all
    ),

    psi_edges as (
        {{- psi_decile_edges('psi_reference_counts') }}
    ),

    psi_numeric_bins as (
        select
            feature,
            lag(edge) over (partition by feature order by edge) as lower_edge,
            edge as upper_edge
        from psi_edges
        union all
        select
            feature,
            max(edge) as lower_edge,
            cast(null as double) as upper_edge
        from psi_edges
        group by feature
    ),

    psi_values as (
        select
            feature,
            feature_kind,
            value
        from psi_reference_counts
        union
        select
            feature,
            feature_kind,
            value
        from psi_compared_counts
    ),

    psi_value_bins as (
        select
            psi_values.feature,
            psi_values.value,
            case
                when psi_values.value is null then 'not recorded'
                when psi_values.feature_kind = 'categorical'
                    then 'code ' || cast(cast(psi_values.value as bigint) as varchar)
                when psi_numeric_bins.feature is null then 'any value'
                when psi_numeric_bins.lower_edge is null
                    then '< ' || {{ bin_bound('psi_numeric_bins.upper_edge') }}
                when psi_numeric_bins.upper_edge is null
                    then '>= ' || {{ bin_bound('psi_numeric_bins.lower_edge') }}
                else '[' || {{ bin_bound('psi_numeric_bins.lower_edge') }} || ', '
                    || {{ bin_bound('psi_numeric_bins.upper_edge') }} || ')'
            end as bin
        from psi_values
        left join psi_numeric_bins
            on
                psi_values.feature_kind = 'numeric'
                and psi_values.feature = psi_numeric_bins.feature
                and psi_values.value >= coalesce(psi_numeric_bins.lower_edge, cast('-infinity' as double))
                and psi_values.value < coalesce(psi_numeric_bins.upper_edge, cast('infinity' as double))
    ),

    psi_reference_bins as (
        select
            psi_reference_counts.feature,
            psi_value_bins.bin,
            sum(psi_reference_counts.value_rows) as bin_rows
        from psi_reference_counts
        inner join psi_value_bins
            on
                psi_reference_counts.feature = psi_value_bins.feature
                and psi_reference_counts.value is not distinct from psi_value_bins.value
        group by all
    ),

    psi_reference_shares as (
        select
            feature,
            bin,
            bin_rows / sum(bin_rows) over (partition by feature) as share
        from psi_reference_bins
    ),

    psi_compared_bins as (
        select
            {%- for column in group_by %}
                psi_compared_counts.{{ column }},
            {%- endfor %}
            psi_compared_counts.feature,
            psi_compared_counts.feature_kind,
            psi_value_bins.bin,
            sum(psi_compared_counts.value_rows) as bin_rows
        from psi_compared_counts
        inner join psi_value_bins
            on
                psi_compared_counts.feature = psi_value_bins.feature
                and psi_compared_counts.value is not distinct from psi_value_bins.value
        group by all
    ),

    psi_compared_shares as (
        select
            *,
            sum(bin_rows) over (partition by {{ (group_by + ['feature']) | join(', ') }}) as compared_rows,
            bin_rows / sum(bin_rows) over (partition by {{ (group_by + ['feature']) | join(', ') }}) as share
        from psi_compared_bins
    ),

    psi_groups as (
        select distinct
            {%- for column in group_by %}
                {{ column }},
            {%- endfor %}
            feature,
            feature_kind,
            compared_rows
        from psi_compared_shares
    ),

    psi_grid as (
        select
            psi_groups.*,
            psi_bins.bin
        from psi_groups
        inner join (select distinct feature, bin from psi_value_bins) as psi_bins
            on psi_groups.feature = psi_bins.feature
    ),

    psi_terms as (
        select
            {%- for column in group_by %}
                psi_grid.{{ column }},
            {%- endfor %}
            psi_grid.feature,
            psi_grid.feature_kind,
            psi_grid.compared_rows,
            psi_grid.bin,
            coalesce(psi_compared_shares.share, 0) as compared_share,
            coalesce(psi_reference_shares.share, 0) as reference_share
        from psi_grid
        left join psi_compared_shares
            on
                psi_grid.feature = psi_compared_shares.feature
                and psi_grid.bin = psi_compared_shares.bin
                {%- for column in group_by %}
                and psi_grid.{{ column }} = psi_compared_shares.{{ column }}
                {%- endfor %}
        left join psi_reference_shares
            on
                psi_grid.feature = psi_reference_shares.feature
                and psi_grid.bin = psi_reference_shares.bin
    ),

    psi_floored as (
        select
            *,
            greatest(compared_share, {{ var('psi_epsilon') }}) as compared_share_floored,
            greatest(reference_share, {{ var('psi_epsilon') }}) as reference_share_floored
        from psi_terms
    ),

    psi_contributions as (
        select
            *,
            (compared_share_floored - reference_share_floored)
            * ln(compared_share_floored / reference_share_floored) as contribution
        from psi_floored
    ),

    psi as (
        select
            {%- for column in group_by %}
                {{ column }},
            {%- endfor %}
            feature,
            feature_kind,
            compared_rows,
            sum(contribution) as psi,
            -- no bin when nothing moved (every contribution is 0 or more)
            case when max(contribution) > 0 then arg_max(bin, contribution) end as largest_shift_bin,
            case when max(contribution) > 0 then arg_max(reference_share, contribution) end
                as largest_shift_reference_share,
            case when max(contribution) > 0 then arg_max(compared_share, contribution) end
                as largest_shift_compared_share
        from psi_contributions
        group by all
    )
{%- endmacro %}

{#- Each numeric feature's deciles (feature, edge: distinct), from `counts` (feature,
    feature_kind, value, value_rows): quantile_disc(value, q) found from the counts, the value
    at 0-based position max(1, n - floor(n - n q)) - 1 of the n sorted values (DuckDB's own
    index; tests/test_dbt_models.py compares with quantile_disc), the first whose cumulative
    count passes it. So the rows behind the counts are read once, never kept whole in memory
    (their long form is a row per road user and feature). -#}
{% macro psi_decile_edges(counts) -%}
    select distinct
        feature,
        edge
    from (
        select
            numeric_counts.feature,
            deciles.q,
            min(numeric_counts.value) as edge
        from (
            select
                feature,
                value,
                sum(value_rows) over (partition by feature order by value) as rows_up_to,
                sum(value_rows) over (partition by feature) as feature_rows
            from {{ counts }}
            where feature_kind = 'numeric' and value is not null
        ) as numeric_counts
        cross join (select unnest([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]) as q) as deciles
        where
            numeric_counts.rows_up_to > greatest(
                1,
                numeric_counts.feature_rows
                - floor(numeric_counts.feature_rows - numeric_counts.feature_rows * deciles.q)
            ) - 1
        group by numeric_counts.feature, deciles.q
    ) as edges
{%- endmacro %}

{#- Warns (never fails the build) when a drift model's PSI is above the alert threshold. -#}
{% test psi_below_alert_threshold(model, column_name) %}
{{ config(severity='warn') }}
select *
from {{ model }}
where {{ column_name }} > {{ psi_alert_threshold() }}
{% endtest %}
