{#- The measures every severity aggregate reports, over rows of fct_road_users. -#}
{% macro severity_measures() -%}
    count(*) as road_users,
    count(distinct num_acc) as accidents,
    count(*) filter (where severity = 1) as unhurt,
    count(*) filter (where severity = 2) as light_injury,
    count(*) filter (where severity = 3) as hospitalised,
    count(*) filter (where severity = 4) as killed,
    round(avg(case when is_severe then 1.0 else 0.0 end), 4) as severe_rate,
    round(avg(case when severity = 4 then 1.0 else 0.0 end), 4) as killed_rate
{%- endmacro %}
