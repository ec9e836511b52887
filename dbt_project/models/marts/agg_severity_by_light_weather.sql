-- Severity by lighting and weather conditions.
select
    lighting_code,
    lighting,
    weather_code,
    weather,
    {{ severity_measures() }}
from {{ ref('fct_road_users') }}
group by lighting_code, lighting, weather_code, weather
