{#- Parsing rules for the raw BAAC encodings. Each is a macro so that the staging models
    and the dbt unit tests exercise the same SQL. -#}

{#- The accident year of an accident number: Num_Acc is the 4-digit year followed by an
    8-digit serial (Python: ml.baac.accident_year). -#}
{% macro accident_year_from_num_acc(num_acc) -%}
    cast({{ num_acc }} // 100000000 as integer)
{%- endmacro %}

{#- Four-digit year from `an` (2-digit in 2005-2018, 4-digit in some later files). -#}
{% macro four_digit_year(an) -%}
    case when {{ an }} < 100 then 2000 + {{ an }} else {{ an }} end
{%- endmacro %}

{#- `hrmn` is HHMM as an integer without leading zeros (745 = 07:45, 30 = 00:30). -#}
{% macro hour_from_hrmn(hrmn) -%}
    case when {{ hrmn }} between 0 and 2359 and {{ hrmn }} % 100 < 60 then {{ hrmn }} // 100 end
{%- endmacro %}

{% macro minute_from_hrmn(hrmn) -%}
    case when {{ hrmn }} between 0 and 2359 and {{ hrmn }} % 100 < 60 then {{ hrmn }} % 100 end
{%- endmacro %}

{#- Coordinates are integers in 1e-5 degrees ("5051199", Kaggle "4873910.0"); 0, empty and
    junk such as "-" mean not recorded. -#}
{% macro degrees_from_raw(raw) -%}
    nullif(try_cast({{ raw }} as double), 0) / 100000.0
{%- endmacro %}

{#- France's territories as latitude/longitude boxes: metropolitan France with Corsica, and
    the overseas départements of the BAAC files (971-974, 976). -#}
{% macro is_within_france(latitude, longitude) -%}
    (
        ({{ latitude }} between 41.3 and 51.1 and {{ longitude }} between -5.2 and 9.6)
        or ({{ latitude }} between 15.8 and 16.6 and {{ longitude }} between -61.9 and -60.9)
        or ({{ latitude }} between 14.3 and 14.9 and {{ longitude }} between -61.3 and -60.8)
        or ({{ latitude }} between 2.1 and 5.8 and {{ longitude }} between -54.6 and -51.6)
        or ({{ latitude }} between -21.4 and -20.8 and {{ longitude }} between 55.2 and 55.9)
        or ({{ latitude }} between -13.1 and -12.6 and {{ longitude }} between 45.0 and 45.3)
    )
{%- endmacro %}

{#- Latitude/longitude in degrees, NULL unless the pair falls inside France. -#}
{% macro clean_coordinate(value_raw, latitude_raw, longitude_raw) -%}
    case
        when {{ is_within_france(degrees_from_raw(latitude_raw), degrees_from_raw(longitude_raw)) }}
            then {{ degrees_from_raw(value_raw) }}
    end
{%- endmacro %}

{#- The files store the INSEE département number times ten ("590" = 59, "10" or "010" = 01),
    Corsica as 201/202 (2A/2B), overseas as their 3-digit code (971). The Kaggle copy may
    write "590.0". -#}
{% macro department_code(dep_raw) -%}
    case
        when try_cast({{ dep_raw }} as double) = 201 then '2A'
        when try_cast({{ dep_raw }} as double) = 202 then '2B'
        when try_cast({{ dep_raw }} as double) >= 970 then cast(cast(try_cast({{ dep_raw }} as double) as integer) as varchar)
        when try_cast({{ dep_raw }} as double) >= 10
            then lpad(cast(cast(try_cast({{ dep_raw }} as double) as integer) // 10 as varchar), 2, '0')
    end
{%- endmacro %}

{#- `grav` codes are not ordered (2 = killed). Severity is: 1 unhurt < 2 light injury
    < 3 hospitalised < 4 killed. -#}
{% macro severity_from_grav(grav) -%}
    case {{ grav }} when 1 then 1 when 4 then 2 when 3 then 3 when 2 then 4 end
{%- endmacro %}

{#- Severe = hospitalised or killed (Python: ml.baac.SEVERE_CLASSES). -#}
{% macro is_severe(severity) -%}
    ({{ severity }} >= 3)
{%- endmacro %}

{#- `secu` is two digits: equipment type then whether it was used (11 = belt, used).
    The undocumented one-digit codes (1, 2, 3, 9) and 10/20 give the equipment only. -#}
{% macro safety_equipment_from_secu(secu) -%}
    case
        when {{ secu }} between 11 and 99 and {{ secu }} % 10 between 1 and 3 then {{ secu }} // 10
        when {{ secu }} in (10, 20) then {{ secu }} // 10
        when {{ secu }} in (1, 2, 3, 9) then {{ secu }}
    end
{%- endmacro %}

{% macro safety_equipment_use_from_secu(secu) -%}
    case when {{ secu }} between 11 and 99 and {{ secu }} % 10 between 1 and 3 then {{ secu }} % 10 end
{%- endmacro %}
